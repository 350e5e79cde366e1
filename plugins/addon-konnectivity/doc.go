// Module addon-konnectivity is the Konnectivity addon plugin for Kamaji: the binary is
// cmd/kamaji-addon-konnectivity, the renderer is package konnectivity.
package addonkonnectivity
