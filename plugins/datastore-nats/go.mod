module github.com/openhcp/kamaji/plugins/datastore-nats

go 1.26
