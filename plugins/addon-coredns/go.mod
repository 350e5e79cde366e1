module github.com/openhcp/kamaji/plugins/addon-coredns

go 1.26
