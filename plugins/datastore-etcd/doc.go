// Module datastore-etcd is the etcd datastore plugin for Kamaji: the binary is
// cmd/kamaji-datastore-etcd, the driver is package driver.
package datastoreetcd
