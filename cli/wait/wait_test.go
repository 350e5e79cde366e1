package wait

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDoneAtOnce(t *testing.T) {
	var out bytes.Buffer
	err := For(context.Background(), "x", Options{Out: &out, Interval: time.Millisecond}, func(context.Context) (bool, string, error) {
		return true, "fine", nil
	})
	if err != nil || out.Len() != 0 {
		t.Fatalf("err %v, printed %q", err, out.String())
	}
}

func TestProgressPrintedOnChangeOnly(t *testing.T) {
	var out bytes.Buffer
	steps := []string{"a", "a", "b", "b", "b", "c"}
	i := 0
	err := For(context.Background(), "t to be X", Options{Out: &out, Interval: time.Millisecond}, func(context.Context) (bool, string, error) {
		p := steps[i]
		i++
		return i == len(steps), p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "waiting for t to be X: a\nwaiting for t to be X: b\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
}

func TestTerminalRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	n := 0
	err := For(context.Background(), "t", Options{Out: &out, Terminal: true, Interval: time.Millisecond}, func(context.Context) (bool, string, error) {
		n++
		return n == 3, "step", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Count(s, "\r\033[K") != 3 || strings.Contains(s, "\n") || !strings.HasSuffix(s, "\r\033[K") {
		t.Fatalf("terminal output %q: want two redraws and an erase, no newline", s)
	}
}

func TestTimeoutNamesTheLastProgress(t *testing.T) {
	err := For(context.Background(), "t to be Sleeping", Options{Timeout: 30 * time.Millisecond, Interval: 5 * time.Millisecond}, func(context.Context) (bool, string, error) {
		return false, "status NotReady; DataStoreReady=False ProvisioningFailed: denied", nil
	})
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err %v, want a TimeoutError", err)
	}
	want := "timed out after 30ms waiting for t to be Sleeping: status NotReady; DataStoreReady=False ProvisioningFailed: denied"
	if err.Error() != want {
		t.Fatalf("\n got %s\nwant %s", err, want)
	}
}

func TestCheckErrorStopsAtOnce(t *testing.T) {
	boom := errors.New("deleted")
	n := 0
	err := For(context.Background(), "t", Options{Interval: time.Millisecond, Timeout: time.Second}, func(context.Context) (bool, string, error) {
		n++
		return false, "", boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("err %v after %d checks", err, n)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := For(ctx, "t", Options{Interval: time.Millisecond}, func(context.Context) (bool, string, error) { return false, "", nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}
