package webhooks_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/openhcp/kamaji/core/tenant/writeblock"
	"github.com/openhcp/kamaji/core/webhooks"
)

// The manager's webhook server refuses whatever reaches TenantDenyPath, with the message of the
// URL a writeblock configuration gives the tenant apiserver.
func TestTenantDenyRefusesWithTheURLsMessage(t *testing.T) {
	pool := x509.NewCertPool()
	pool.AddCert(env.CA.Cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, msg := range []string{"this tenant is write-limited: creations are blocked outside kube-system", "odd / ../ 100% \"text\" é", ""} {
		review := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID: types.UID("uid-1"), Operation: admissionv1.Create, Namespace: "default", Name: "x",
				Kind: metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"},
			},
		}
		body, _ := json.Marshal(review)
		resp, err := hc.Post(writeblock.MessageURL(env.WebhookURL+webhooks.TenantDenyPath, msg), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var got admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || got.Response == nil {
			t.Fatalf("%q: HTTP %d, %v, %+v", msg, resp.StatusCode, err, got)
		}
		want := msg
		if msg == "" {
			want = "refused by Kamaji: this tenant's writes are blocked"
		}
		r := got.Response
		if r.Allowed || r.UID != "uid-1" || r.Result == nil || r.Result.Code != http.StatusForbidden || r.Result.Message != want {
			t.Errorf("%q: want a 403 refusal with the message, got %+v %+v", msg, r, r.Result)
		}
	}
}
