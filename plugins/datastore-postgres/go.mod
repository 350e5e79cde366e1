module github.com/openhcp/kamaji/plugins/datastore-postgres

go 1.26
