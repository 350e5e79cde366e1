package kubeconfig

import (
	"errors"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/clientcmd/api"
)

// Build returns a kubeconfig with one cluster, one user with embedded client certificate data,
// and one context "<user>@<cluster>" set as current. The output is a pure function of the
// arguments, which is what lets Ensure keep bytes identical when nothing changed.
func Build(server string, caPEM []byte, user string, certPEM, keyPEM []byte, clusterName string) ([]byte, error) {
	switch {
	case server == "":
		return nil, errors.New("kubeconfig: empty server URL")
	case len(caPEM) == 0:
		return nil, errors.New("kubeconfig: empty CA")
	case user == "" || clusterName == "":
		return nil, errors.New("kubeconfig: empty user or cluster name")
	case len(certPEM) == 0 || len(keyPEM) == 0:
		return nil, errors.New("kubeconfig: empty client certificate or key")
	}
	cfg := api.NewConfig()
	cfg.Clusters[clusterName] = &api.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &api.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	ctx := ContextName(user, clusterName)
	cfg.Contexts[ctx] = &api.Context{Cluster: clusterName, AuthInfo: user}
	cfg.CurrentContext = ctx
	return clientcmd.Write(*cfg)
}

// ContextName is kubeadm's context naming.
func ContextName(user, clusterName string) string { return user + "@" + clusterName }

// contents is what Ensure reads back from a kubeconfig: the current context's server and client
// pair.
type contents struct {
	server    string
	cert, key []byte
}

// parse reads the current context; ok is false when the kubeconfig cannot be used as one of
// ours (unparsable, no current context, no embedded client pair).
func parse(data []byte) (c contents, ok bool) {
	e, err := Read(data)
	if err != nil {
		return c, false
	}
	server, cert, key, ok := e.Current()
	if !ok || len(cert) == 0 || len(key) == 0 {
		return c, false
	}
	return contents{server: server, cert: cert, key: key}, true
}
