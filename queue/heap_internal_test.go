package queue

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// handHeap is the hand-written binary heap jobHeap was before it moved to
// container/heap, kept as BenchmarkJobHeap's reference.
type handHeap struct {
	s  []*mjob
	at func(*mjob) time.Time
}

func (h *handHeap) less(i, k int) bool { return h.at(h.s[i]).Before(h.at(h.s[k])) }

func (h *handHeap) swap(i, k int) {
	h.s[i], h.s[k] = h.s[k], h.s[i]
	h.s[i].hidx = i
	h.s[k].hidx = k
}

func (h *handHeap) push(j *mjob) {
	j.hidx = len(h.s)
	h.s = append(h.s, j)
	h.up(j.hidx)
}

func (h *handHeap) remove(j *mjob) {
	i, n := j.hidx, len(h.s)-1
	if i != n {
		h.swap(i, n)
	}
	h.s[n] = nil
	h.s = h.s[:n]
	if i != n {
		h.fix(i)
	}
	if cap(h.s) > 1024 && n < cap(h.s)/8 {
		h.s = append([]*mjob(nil), h.s...)
	}
}

func (h *handHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *handHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *handHeap) down(i int) bool {
	i0, n := i, len(h.s)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > i0
}

type heapOps struct {
	push   func(*mjob)
	remove func(*mjob)
	top    func() *mjob
}

func newHandHeap() heapOps {
	h := &handHeap{at: func(j *mjob) time.Time { return j.leaseUntil }}
	return heapOps{h.push, h.remove, func() *mjob { return h.s[0] }}
}

func newContainerHeap() heapOps {
	h := &jobHeap{at: func(j *mjob) time.Time { return j.leaseUntil }}
	return heapOps{h.push, h.remove, func() *mjob { return h.s[0] }}
}

// heapBench is one heap under a workload: step does one op (a push and a
// remove).
type heapBench struct {
	name string
	step func()
}

// newHeapBench fills a heap of size jobs and returns its step. pattern
// "ack" is what Memory's lease heap sees per job: a job dequeued is pushed
// (leased until about now + lease), and leaves when acked, in about the
// order it came (a remove of an arbitrary element); "expire" removes the
// top, as expiry and the schedule do.
func newHeapBench(name string, h heapOps, pattern string, size int) heapBench {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Now()
	jobs := make([]*mjob, 4*size)
	for i := range jobs {
		jobs[i] = &mjob{}
	}
	in := make([]*mjob, 0, size) // FIFO of the jobs in the heap
	i := 0
	next := func() *mjob {
		j := jobs[i%len(jobs)]
		i++
		j.leaseUntil = base.Add(time.Duration(i)*time.Millisecond + time.Duration(r.IntN(1000))*time.Microsecond)
		return j
	}
	for range size {
		j := next()
		h.push(j)
		in = append(in, j)
	}
	step := func() {
		j := next()
		h.push(j)
		if pattern == "expire" {
			h.remove(h.top())
			return
		}
		// Ack a job near the oldest: in flight in parallel, jobs
		// finish in about the order they came.
		k := r.IntN(min(len(in), 4))
		h.remove(in[k])
		copy(in[1:k+1], in[:k])
		in = append(in[1:], j)
	}
	return heapBench{name, step}
}

// BenchmarkJobHeap compares jobHeap (container/heap) with the hand-written
// heap it replaced, one op being a push and a remove, at 10 and 1,000 jobs
// in the heap. The two run in alternating blocks of 256 ops, the first of
// each pair rotating, each block timed alone, so both see the same
// stretch of a shared machine; the metrics are each one's median ns per
// op over its blocks (hand-ns/op, container-ns/op) and their ratio
// (container/hand). ns/op is a pair of ops.
//
//	go test -run '^$' -bench JobHeap -count 5 ./queue/
func BenchmarkJobHeap(b *testing.B) {
	const block = 256
	for _, pattern := range []string{"ack", "expire"} {
		for _, size := range []int{10, 1000} {
			b.Run(pattern+"/"+strconv.Itoa(size), func(b *testing.B) {
				hs := []heapBench{
					newHeapBench("hand", newHandHeap(), pattern, size),
					newHeapBench("container", newContainerHeap(), pattern, size),
				}
				per := make([][]float64, len(hs))
				b.ReportAllocs()
				b.ResetTimer()
				for n := 0; n < b.N; n += block {
					for k := range hs {
						i := (k + n/block) % len(hs)
						start := time.Now()
						for range block {
							hs[i].step()
						}
						per[i] = append(per[i], float64(time.Since(start).Nanoseconds())/block)
					}
				}
				b.StopTimer()
				med := make([]float64, len(hs))
				for i := range hs {
					slices.Sort(per[i])
					med[i] = per[i][len(per[i])/2]
					b.ReportMetric(med[i], hs[i].name+"-ns/op")
				}
				b.ReportMetric(med[1]/med[0], "container/hand")
			})
		}
	}
}
