module github.com/openhcp/kamaji/plugins/datastore-etcd

go 1.26
