package manager

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// DefaultShutdownDelay is how long a manager goes on serving after SIGTERM by default
// (--shutdown-delay).
const DefaultShutdownDelay = 10 * time.Second

// SignalContext is the manager's context: it ends delay after the first SIGTERM or SIGINT, and
// a second signal exits at once. A deleted manager pod leaves the webhook Service's endpoints,
// then the wake EndpointSlices (rewritten by the leader, which goes on leading meanwhile) and
// kube-proxy's rules a moment later: until then the admin apiserver's admission calls, the
// tenant apiservers' webhook and audit calls and sleeping tenants' clients may still be led to
// it, and it answers them, as kube-apiserver does during its --shutdown-delay-duration.
func SignalContext(delay time.Duration, log logr.Logger) context.Context {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	return delayedStop(sigs, delay, time.After, func() { os.Exit(1) }, log)
}

// delayedStop cancels the context it returns delay after the first value of sigs; a second
// value calls exit. after and exit are injected by tests.
func delayedStop(sigs <-chan os.Signal, delay time.Duration, after func(time.Duration) <-chan time.Time, exit func(), log logr.Logger) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		sig := <-sigs
		if delay > 0 {
			log.Info("stopping after the shutdown delay, serving meanwhile", "signal", sig.String(), "shutdownDelay", delay)
			select {
			case <-after(delay):
			case <-sigs:
				exit()
				return
			}
		}
		log.Info("stopping", "signal", sig.String())
		cancel()
		<-sigs
		exit()
	}()
	return ctx
}
