package kubeconfig

import (
	"net"
	"strconv"
	"strings"
)

// PublicServer is the URL of the public endpoint (status.controlPlaneEndpoint, "host:port").
func PublicServer(endpoint string) string {
	if endpoint == "" || strings.Contains(endpoint, "://") {
		return endpoint
	}
	return "https://" + endpoint
}

// LocalServer is the URL the controller-manager and scheduler use: they run in the apiserver's
// pod, so loopback avoids the Service and load balancer hops and survives their outages.
func LocalServer(port int32) string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
}

// ServiceServer is the URL of the tenant Service from inside the admin cluster.
func ServiceServer(serviceName, namespace string, port int32) string {
	return "https://" + net.JoinHostPort(serviceName+"."+namespace+".svc", strconv.Itoa(int(port)))
}
