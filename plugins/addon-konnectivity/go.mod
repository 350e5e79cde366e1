module github.com/openhcp/kamaji/plugins/addon-konnectivity

go 1.26
