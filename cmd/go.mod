module github.com/openhcp/kamaji/cmd

go 1.26
