// Module datastore-mysql is the MySQL/MariaDB datastore plugin for Kamaji: the binary is
// cmd/kamaji-datastore-mysql, the driver is package driver.
package datastoremysql
