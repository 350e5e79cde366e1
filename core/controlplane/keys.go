package controlplane

// Secret keys the core must write for Build's mounts to find their files. Each key is also the
// file name kubeadm uses, so the Secret contents and the on-disk layout read the same.
const (
	// Secrets.CA
	KeyCACert = "ca.crt"
	// KeyCABundle: the CA and the previous one, during a CA rotation's overlap only.
	KeyCABundle = "ca-bundle.crt"
	KeyCAKey    = "ca.key"
	// Secrets.APIServer
	KeyAPIServerCert = "apiserver.crt"
	KeyAPIServerKey  = "apiserver.key"
	// Secrets.APIServerKubeletClient
	KeyAPIServerKubeletClientCert = "apiserver-kubelet-client.crt"
	KeyAPIServerKubeletClientKey  = "apiserver-kubelet-client.key"
	// Secrets.FrontProxyCA (the key is never mounted: no container signs with it)
	KeyFrontProxyCACert = "front-proxy-ca.crt"
	KeyFrontProxyCAKey  = "front-proxy-ca.key"
	// Secrets.FrontProxyClient
	KeyFrontProxyClientCert = "front-proxy-client.crt"
	KeyFrontProxyClientKey  = "front-proxy-client.key"
	// Secrets.ServiceAccount
	KeyServiceAccountPublicKey  = "sa.pub"
	KeyServiceAccountPrivateKey = "sa.key"
	// EtcdStorage.CertSecret: the datastore CA and the client certificate kube-apiserver presents.
	KeyDataStoreCACert     = "ca.crt"
	KeyDataStoreClientCert = "server.crt"
	KeyDataStoreClientKey  = "server.key"
	// Secrets.ControllerManagerKubeconfig and Secrets.SchedulerKubeconfig
	KeyControllerManagerKubeconfig = "controller-manager.conf"
	KeySchedulerKubeconfig         = "scheduler.conf"
)

// Names the caller may need to find things in the built Deployment.
const (
	// SecretsChecksumAnnotation on the pod template carries Input.SecretsChecksum: a changed
	// Secret changes the template and so rolls the pods, which is also what makes subPath
	// mounts (which never see Secret updates) safe.
	SecretsChecksumAnnotation = "kamaji.clastix.io/secrets-checksum"

	APIServerContainer         = "kube-apiserver"
	ControllerManagerContainer = "kube-controller-manager"
	SchedulerContainer         = "kube-scheduler"
	KineContainer              = "kine"

	// APIServerPortName names kube-apiserver's container port (the secure port).
	APIServerPortName = "kube-apiserver"

	// DefaultKineFilesPath is where KineStorage.FilesSecret is mounted when FilesPath is empty.
	DefaultKineFilesPath = "/etc/kine"
	// DefaultKineEndpoint is kine's default client URL, used when KineStorage.Endpoint is empty.
	DefaultKineEndpoint = "http://127.0.0.1:2379"
)

// kubeadm's layout: flags below point at these paths.
const (
	kubeDir    = "/etc/kubernetes"
	pkiDir     = kubeDir + "/pki"
	etcdPKIDir = pkiDir + "/etcd"
)
