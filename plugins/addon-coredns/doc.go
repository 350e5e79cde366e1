// Module addon-coredns is the CoreDNS addon plugin for Kamaji: the binary is
// cmd/kamaji-addon-coredns, the renderer is package coredns.
package addoncoredns
