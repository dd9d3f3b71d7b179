package gateway

// QuotaCounterKey is the store's key (without the limiter's prefix) of
// clientID's quota counter at rate, for tests that read Redis.
func (l *RateLimiter) QuotaCounterKey(clientID, rate string) string {
	return rateQuotaKey(clientID, l.rateFor(rate).rate)
}
