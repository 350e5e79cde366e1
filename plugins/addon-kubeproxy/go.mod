module github.com/openhcp/kamaji/plugins/addon-kubeproxy

go 1.26
