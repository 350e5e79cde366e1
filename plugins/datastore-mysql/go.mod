module github.com/openhcp/kamaji/plugins/datastore-mysql

go 1.26
