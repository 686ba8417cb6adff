package pgqueue

// Batches reports how many lease and ack statements served more than one
// call, so that tests know the batched path ran.
func Batches(q *Queue) (leases, acks int64) {
	return q.leases.batches.Load(), q.acks.batches.Load()
}
