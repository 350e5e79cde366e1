// Module datastore-nats is the NATS (JetStream) datastore plugin for Kamaji: the binary is
// cmd/kamaji-datastore-nats, the driver is package driver.
package datastorenats
