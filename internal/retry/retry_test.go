package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffNext(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		min, max time.Duration
		want     []time.Duration
	}{
		{"doubling to a ceiling", 5 * ms, 30 * ms, []time.Duration{5 * ms, 10 * ms, 20 * ms, 30 * ms, 30 * ms}},
		{"constant", 20 * ms, 20 * ms, []time.Duration{20 * ms, 20 * ms, 20 * ms}},
		{"max below min is min", 20 * ms, ms, []time.Duration{20 * ms, 20 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Min: tc.min, Max: tc.max}
			for i, want := range tc.want {
				if got := b.Next(); got != want {
					t.Fatalf("delay %d: got %v, want %v", i+1, got, want)
				}
			}
			b.Reset()
			if got := b.Next(); got != tc.min {
				t.Fatalf("after Reset: got %v, want %v", got, tc.min)
			}
		})
	}
}

func TestDo(t *testing.T) {
	errBusy := errors.New("busy")
	errBroken := errors.New("broken")
	for _, tc := range []struct {
		name      string
		attempts  int
		fails     []error // op's answers, then nil
		retryable func(error) bool
		wantCalls int
		wantErr   error
		wantTime  time.Duration // fake time spent waiting
	}{
		{"success at once", 3, nil, nil, 1, nil, 0},
		{"success on the third call", 3, []error{errBusy, errBusy}, nil, 3, nil, 300 * time.Millisecond},
		{"attempts run out", 2, []error{errBusy, errBusy, errBusy}, nil, 2, errBusy, 100 * time.Millisecond},
		{"an error not worth a retry", 0, []error{errBusy, errBroken, errBusy}, func(err error) bool { return err == errBusy }, 2, errBroken, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				calls := 0
				err := Do(t.Context(), Backoff{Min: 100 * time.Millisecond, Max: time.Second}, tc.attempts, tc.retryable, func() error {
					calls++
					if calls <= len(tc.fails) {
						return tc.fails[calls-1]
					}
					return nil
				})
				if err != tc.wantErr || calls != tc.wantCalls {
					t.Fatalf("Do: err %v after %d calls, want %v after %d", err, calls, tc.wantErr, tc.wantCalls)
				}
				if got := time.Since(start); got != tc.wantTime {
					t.Fatalf("Do waited %v, want %v", got, tc.wantTime)
				}
			})
		})
	}
}

// TestDoEndsWithContext: a context that ends during a wait ends Do at once,
// with op's last error rather than the context's.
func TestDoEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		errLoad := errors.New("no certificate yet")
		calls := 0
		err := Do(ctx, Backoff{Min: 2 * time.Second, Max: 2 * time.Second}, 0, nil, func() error { calls++; return errLoad })
		if err != errLoad || calls != 3 {
			t.Fatalf("Do: err %v after %d calls, want %v after 3", err, calls, errLoad)
		}
		if got := time.Since(start); got != 5*time.Second {
			t.Fatalf("Do returned after %v, want 5s (the context's end)", got)
		}
	})
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if !Sleep(t.Context(), time.Second) {
			t.Fatal("Sleep(1s) reported the context ended")
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		if Sleep(ctx, time.Hour) {
			t.Fatal("Sleep(1h) reported the hour passed although the context ended after 1s")
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("Sleep returned after %v, want 1s", got)
		}
	})
}
