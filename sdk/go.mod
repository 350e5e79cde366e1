module github.com/openhcp/kamaji/sdk

go 1.26
