// Package integration runs kubectl-kamaji's verbs against a real kube-apiserver with the
// operator's CRDs (core/testenv), through a real kubeconfig file and the same flags a user
// passes: merge patches, resourceVersion conflicts, the status subresource, generations, RBAC
// refusals, event field selectors and discovery are the apiserver's own. No manager runs: a
// stand-in (manager_test.go) writes the status the core would write, so each verb's wait is
// exercised to its end. The verbs against a real tenant, with the real manager, are the local
// plane's end-to-end test (cmd/internal/local/cli_e2e_test.go).
package integration
