package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

type dataStoreValidator struct {
	opts   Options
	reader client.Reader
}

func (v *dataStoreValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation == admissionv1.Delete {
		ds := &kamajiv1alpha1.DataStore{}
		if err := json.Unmarshal(req.OldObject.Raw, ds); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		users, err := DataStoreUsers(ctx, v.reader, ds.Name)
		if err != nil {
			return errored(err)
		}
		if len(users) > 0 {
			return admission.Denied(fmt.Sprintf("DataStore %s is in use by TenantControlPlane %s: delete them or move them to another DataStore first",
				ds.Name, strings.Join(users, ", ")))
		}
		return admission.Allowed("")
	}
	ds := &kamajiv1alpha1.DataStore{}
	if err := json.Unmarshal(req.Object.Raw, ds); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if errs := ValidateDataStore(ds, v.opts.Drivers); len(errs) > 0 {
		return invalid(dataStoreGK, ds.Name, errs)
	}
	return admission.Allowed("")
}

// ValidateDataStore checks what the CRD schema cannot: the driver is built in or served by a
// configured plugin.
func ValidateDataStore(ds *kamajiv1alpha1.DataStore, drivers Drivers) field.ErrorList {
	driver := ds.Spec.Driver
	if slices.Contains(kamajiv1alpha1.BuiltinDrivers, driver) || (drivers != nil && drivers.Served(driver)) {
		return nil
	}
	known := slices.Clone(kamajiv1alpha1.BuiltinDrivers)
	if drivers != nil {
		for _, n := range drivers.Names() {
			if !slices.Contains(known, n) {
				known = append(known, n)
			}
		}
	}
	return field.ErrorList{field.NotSupported(field.NewPath("spec", "driver"), driver, known)}
}

// DataStoreUsers lists the TenantControlPlanes (namespace/name) that store data in the DataStore,
// as their main store or an override, by spec or by what their status recorded.
func DataStoreUsers(ctx context.Context, r client.Reader, name string) ([]string, error) {
	var list kamajiv1alpha1.TenantControlPlaneList
	if err := r.List(ctx, &list); err != nil {
		return nil, err
	}
	var users []string
	for _, tcp := range list.Items {
		if slices.ContainsFunc(slicesOf(&tcp), func(s sliceRef) bool { return s.dataStore == name }) {
			users = append(users, tcp.Namespace+"/"+tcp.Name)
		}
	}
	sort.Strings(users)
	return users, nil
}
