package feedback

import (
	"math"
	"sync"
	"time"
)

// DefaultRatePerMinute is FEEDBACK_RATE_LIMIT_PER_MINUTE's default.
const DefaultRatePerMinute = 600

// Limiter is a token bucket per partner: each request takes a token; tokens come back at
// PerMinute/60 per second, up to a burst of PerMinute/6 (ten seconds' worth, at least 1). A steady
// partner gets PerMinute requests a minute; a burst after a quiet spell gets at most a sixth of that
// at once.
//
// The buckets live in this process: with N instances of the function app a partner can get up to N
// times the limit. That bounds abuse of one instance, which is what it is for; a hard global quota
// belongs in front of the app (API Management).
type Limiter struct {
	rate  float64 // tokens per second
	burst float64
	mu    sync.Mutex
	bkt   map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewLimiter returns a limiter allowing perMinute requests a minute per partner (at least 1).
func NewLimiter(perMinute int) *Limiter {
	if perMinute < 1 {
		perMinute = 1
	}
	return &Limiter{rate: float64(perMinute) / 60, burst: math.Max(1, math.Floor(float64(perMinute)/6)), bkt: map[string]*bucket{}}
}

// Allow takes a token for partner at now. When none is left it returns false and how long until one
// is back (at least one second, as Retry-After counts whole seconds).
func (l *Limiter) Allow(partner string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.bkt[partner]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.bkt[partner] = b
	}
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	secs := math.Max(1, math.Ceil((1-b.tokens)/l.rate))
	return false, time.Duration(secs) * time.Second
}
