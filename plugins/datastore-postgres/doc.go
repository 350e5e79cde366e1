// Module datastore-postgres is the PostgreSQL datastore plugin for Kamaji: the binary is
// cmd/kamaji-datastore-postgres, the driver is package driver.
package datastorepostgres
