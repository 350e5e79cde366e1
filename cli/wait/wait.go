// Package wait polls until a state is reached, keeping the user informed with one progress
// line: redrawn in place on a terminal, printed again only when it changes otherwise (logs,
// CI). It fails at the timeout with the last progress it saw, which names the state and the
// failing condition.
package wait

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Check looks at the current state once: done when the goal is reached, progress a one-line
// description of where things stand, err to stop waiting at once (the object is gone, the
// caller may not read it).
type Check func(ctx context.Context) (done bool, progress string, err error)

// Options tune For.
type Options struct {
	// Timeout bounds the whole wait; 0 waits as long as ctx allows.
	Timeout time.Duration
	// Interval between two checks; one second when 0.
	Interval time.Duration
	// Out receives the progress line; nothing is printed when nil.
	Out io.Writer
	// Terminal redraws the progress line in place.
	Terminal bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// For checks every Interval until check reports done. goal completes "waiting for ...", as in
// "tenant-00 to be Sleeping".
func For(ctx context.Context, goal string, opts Options, check Check) error {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	start := now()
	p := &printer{out: opts.Out, terminal: opts.Terminal, goal: goal}
	defer p.end()
	last := ""
	for {
		done, progress, err := check(ctx)
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &TimeoutError{Goal: goal, Timeout: opts.Timeout, Last: last}
			}
			return err
		}
		if progress != "" {
			last = progress
		}
		if done {
			return nil
		}
		p.show(last, now().Sub(start))
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &TimeoutError{Goal: goal, Timeout: opts.Timeout, Last: last}
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// TimeoutError is returned when the timeout elapsed: it names the goal and the last progress
// seen, which says what the state was and which condition failed.
type TimeoutError struct {
	Goal    string
	Timeout time.Duration
	Last    string
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("timed out after %s waiting for %s", e.Timeout, e.Goal)
	if e.Last != "" {
		msg += ": " + e.Last
	}
	return msg
}

// printer writes the progress line.
type printer struct {
	out      io.Writer
	terminal bool
	goal     string
	shown    string // last progress printed (not on a terminal)
	drawn    bool   // something was printed (on a terminal: a line is drawn in place)
}

func (p *printer) show(progress string, elapsed time.Duration) {
	if p.out == nil {
		return
	}
	line := "waiting for " + p.goal
	if progress != "" {
		line += ": " + progress
	}
	if p.terminal {
		// Carriage return and erase-line: one line, redrawn.
		fmt.Fprintf(p.out, "\r\033[K%s (%s)", line, elapsed.Round(time.Second))
		p.drawn = true
		return
	}
	if !p.drawn || progress != p.shown {
		fmt.Fprintln(p.out, line)
		p.shown, p.drawn = progress, true
	}
}

func (p *printer) end() {
	if p.out != nil && p.terminal && p.drawn {
		fmt.Fprint(p.out, "\r\033[K")
	}
}
