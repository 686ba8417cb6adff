package pgqueue

// Batches reports how many lease, ack and ack-and-lease statements served
// more than one call, so that tests know the batched path ran.
func Batches(q *Queue) (leases, acks, ackLeases int64) {
	return q.leases.batches.Load(), q.acks.batches.Load(), q.ackLeases.batches.Load()
}
