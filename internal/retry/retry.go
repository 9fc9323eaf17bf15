package retry

import (
	"context"
	"time"
)

// Backoff is the delay before the next try: Min after the first failure,
// then twice the previous delay, never over Max (a Max below Min is Min, so
// Min == Max is a constant delay). The zero value of its state is a fresh
// start; Reset after a success.
type Backoff struct {
	Min, Max time.Duration

	d time.Duration
}

// Next returns the delay before the next try and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.d == 0 {
		b.d = b.Min
	} else {
		b.d = min(2*b.d, max(b.Max, b.Min))
	}
	return b.d
}

// Reset starts the delays again from Min.
func (b *Backoff) Reset() { b.d = 0 }

// Sleep waits for d, or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Do calls op until it returns nil, waiting b's delays between calls. It
// stops early and returns op's error when retryable (nil: every error is)
// says that error is not worth another try, when op has been called
// attempts times (zero or less: no limit), or when ctx ends; op's last
// error is returned then too, as the most telling one.
func Do(ctx context.Context, b Backoff, attempts int, retryable func(error) bool, op func() error) error {
	for n := 1; ; n++ {
		err := op()
		if err == nil {
			return nil
		}
		if retryable != nil && !retryable(err) || attempts > 0 && n >= attempts {
			return err
		}
		if !Sleep(ctx, b.Next()) {
			return err
		}
	}
}
