package kubeconfig

// Secret names, Kamaji's: "<tcp>-admin-kubeconfig" and so on.
func AdminSecretName(tcpName string) string { return tcpName + "-admin-kubeconfig" }
func ControllerManagerSecretName(tcpName string) string {
	return tcpName + "-controller-manager-kubeconfig"
}
func SchedulerSecretName(tcpName string) string { return tcpName + "-scheduler-kubeconfig" }

// KonnectivitySecretName holds the konnectivity-server's kubeconfig (Kamaji's name).
func KonnectivitySecretName(tcpName string) string { return tcpName + "-konnectivity-kubeconfig" }

// Secret data keys.
const (
	// KeyAdmin and KeySuperAdmin dial the public endpoint; the .svc variants carry the same
	// credentials but dial the tenant Service, for consumers inside the admin cluster.
	KeyAdmin             = "admin.conf"
	KeySuperAdmin        = "super-admin.conf"
	KeyAdminSvc          = "admin.svc"
	KeySuperAdminSvc     = "super-admin.svc"
	KeyControllerManager = "controller-manager.conf"
	KeyScheduler         = "scheduler.conf"
	KeyKonnectivity      = "konnectivity-server.conf"
)

// Client identities, kubeadm ≥ 1.29's: admin.conf is bound to cluster-admin through the
// kubeadm:cluster-admins group (so it can be revoked by RBAC), super-admin.conf is in
// system:masters and bypasses authorization (needed to bootstrap that very binding).
const (
	AdminUser         = "kubernetes-admin"
	AdminGroup        = "kubeadm:cluster-admins"
	SuperAdminUser    = "kubernetes-super-admin"
	SuperAdminGroup   = "system:masters"
	ControllerManager = "system:kube-controller-manager"
	Scheduler         = "system:kube-scheduler"
)
