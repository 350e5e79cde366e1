// Module addon-kubeproxy is the kube-proxy addon plugin for Kamaji: the binary is
// cmd/kamaji-addon-kubeproxy, the renderer is package kubeproxy.
package addonkubeproxy
