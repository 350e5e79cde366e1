package nodeagent

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

func TestNodeStatus(t *testing.T) {
	p := NodeParams{Name: "node-1", IP: "10.1.0.2", Port: 10250, KubeletVersion: "v1.37.2"}
	n := newNode(p)
	if n.Labels["kubernetes.io/hostname"] != "node-1" || n.Labels["kubernetes.io/os"] != "linux" || n.Labels["kubernetes.io/arch"] != runtime.GOARCH || len(n.Labels) != 3 {
		t.Errorf("labels %v", n.Labels)
	}
	t0 := time.Unix(1000, 0)
	setNodeStatus(n, p, t0)
	s := n.Status
	if len(s.Addresses) != 2 || s.Addresses[0] != (corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.1.0.2"}) ||
		s.Addresses[1] != (corev1.NodeAddress{Type: corev1.NodeHostName, Address: "node-1"}) {
		t.Errorf("addresses %v", s.Addresses)
	}
	if s.DaemonEndpoints.KubeletEndpoint.Port != 10250 || s.NodeInfo.KubeletVersion != "v1.37.2" ||
		s.NodeInfo.OperatingSystem != "linux" || s.NodeInfo.Architecture != runtime.GOARCH {
		t.Errorf("endpoint %v, info %+v", s.DaemonEndpoints, s.NodeInfo)
	}
	for _, rl := range []corev1.ResourceList{s.Capacity, s.Allocatable} {
		if rl.Cpu().Cmp(resource.MustParse("2")) != 0 || rl.Memory().Cmp(resource.MustParse("2Gi")) != 0 || rl.Pods().Value() != 110 {
			t.Errorf("resources %v", rl)
		}
	}
	ready := func() corev1.NodeCondition {
		t.Helper()
		if len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Type != corev1.NodeReady {
			t.Fatalf("conditions %v", n.Status.Conditions)
		}
		return n.Status.Conditions[0]
	}
	if c := ready(); c.Status != corev1.ConditionTrue || c.Reason != "KubeletReady" || c.Message != "kamaji node agent is posting ready status" ||
		!c.LastHeartbeatTime.Time.Equal(t0) || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("ready %+v", c)
	}

	// A heartbeat moves only the heartbeat time...
	t1 := t0.Add(time.Minute)
	setReady(n, t1)
	if c := ready(); !c.LastHeartbeatTime.Time.Equal(t1) || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("after heartbeat %+v", c)
	}
	// ...unless the node lifecycle controller had marked it Unknown meanwhile.
	n.Status.Conditions[0].Status = corev1.ConditionUnknown
	t2 := t1.Add(time.Minute)
	setReady(n, t2)
	if c := ready(); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(t2) {
		t.Errorf("after Unknown %+v", c)
	}
}

func TestNewLease(t *testing.T) {
	n := newNode(NodeParams{Name: "node-1"})
	n.UID = types.UID("uid-1")
	now := time.Unix(2000, 0)
	l := newLease(n, now)
	if l.Namespace != "kube-node-lease" || l.Name != "node-1" || *l.Spec.HolderIdentity != "node-1" ||
		*l.Spec.LeaseDurationSeconds != 40 || !l.Spec.RenewTime.Time.Equal(now) {
		t.Errorf("lease %+v", l)
	}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].APIVersion != "v1" || l.OwnerReferences[0].Kind != "Node" ||
		l.OwnerReferences[0].Name != "node-1" || l.OwnerReferences[0].UID != "uid-1" {
		t.Errorf("owner %+v", l.OwnerReferences)
	}
}

func TestNodeClientCSR(t *testing.T) {
	csrPEM, key, err := nodeClientCSR("node-1")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("CSR PEM %q", csrPEM)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Error(err)
	}
	// What the csrapproving controller's kubelet-client recognizer requires.
	if req.Subject.CommonName != "system:node:node-1" || len(req.Subject.Organization) != 1 || req.Subject.Organization[0] != "system:nodes" ||
		len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) != 0 {
		t.Errorf("subject %v, SANs %v %v %v %v", req.Subject, req.DNSNames, req.IPAddresses, req.EmailAddresses, req.URIs)
	}

	// The signed certificate is checked against the key and named by its issuer.
	ca := newTestCA(t, "kubernetes")
	certPEM := ca.issue(t, req.Subject, req.PublicKey)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if cn, err := checkIssued(certPEM, keyPEM); err != nil || cn != "kubernetes" {
		t.Errorf("issuer %q, %v", cn, err)
	}
	wrong := ca.issue(t, pkix.Name{CommonName: "system:node:node-1"}, newKey(t).Public())
	_, err = checkIssued(wrong, keyPEM)
	wantErr(t, err, "issued certificate does not match the key")
}
