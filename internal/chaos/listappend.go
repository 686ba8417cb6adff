package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// CheckSessions checks a session history against SessionModel without a
// search: a family is an append-only list of unique values, so (as in
// Elle's list-append checker) every attached read must be a prefix of the
// longest one, which fixes the order of every append it shows, and the
// history is linearizable exactly when the orders the reads imply, the
// real-time order of the operations and the family's death leave no
// cycle. That takes time quadratic in a family's operations where
// porcupine's search over the same history, with appends of unknown
// outcome and appends a renewal may drop, gives up after minutes on
// families of a few dozen operations. SessionModel stays the executable
// statement of the promise: the tests check that both agree on small
// histories.
//
// It returns "" when every family's history is linearizable, or a
// description of the first family's violation.
func CheckSessions(ops []porcupine.Operation) string {
	for _, part := range SessionModel.Partition(ops) {
		if v := checkFamily(part); v != "" {
			return v
		}
	}
	return ""
}

// historyLimit bounds the operations a violation lists: the first and
// the last of them.
const historyLimit = 80

// history lists a family's operations in the order of their calls, one
// a line, for a violation's report: what the family did before and
// around the operation that broke the rule.
func history(ops []porcupine.Operation, describe func(porcupine.Operation) string) string {
	sorted := slices.SortedFunc(slices.Values(ops), func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var b strings.Builder
	for i, op := range sorted {
		if len(sorted) > historyLimit && i == historyLimit/2 {
			fmt.Fprintf(&b, "  ... %d more\n", len(sorted)-historyLimit)
		}
		if len(sorted) > historyLimit && i >= historyLimit/2 && i < len(sorted)-historyLimit/2 {
			continue
		}
		fmt.Fprintf(&b, "  %s\n", describe(op))
	}
	return b.String()
}

// A listNode is one operation in the order graph of a family, or its
// death.
type listNode struct {
	desc       string
	call, ret  int64
	successors []int
}

// familyAppend is an append and what its outcome allows.
type familyAppend struct {
	op        porcupine.Operation
	mayApply  bool // its write may have reached the family
	mustApply bool // and it must have, unless the family was gone
}

func checkFamily(ops []porcupine.Operation) string {
	describe := func(op porcupine.Operation) string {
		ret := "unknown"
		if op.Return != Unknown {
			ret = fmt.Sprintf("%.6fs", float64(op.Return)/1e9)
		}
		return fmt.Sprintf("client %d [%.6fs, %s] %s", op.ClientId, float64(op.Call)/1e9, ret,
			SessionModel.DescribeOperation(op.Input, op.Output))
	}
	appends := map[string]familyAppend{}
	var reads, detached []porcupine.Operation
	var deathCauses []porcupine.Operation
	definiteDeath := int64(Unknown)
	for _, op := range ops {
		in := op.Input.(SessionOp)
		var out SessionOut
		if op.Output != nil {
			out = op.Output.(SessionOut)
		}
		switch in.Kind {
		case "append":
			applied := !out.OK || out.Attached
			appends[in.Value] = familyAppend{op, applied, applied && out.OK && !in.MayDrop}
		case "read":
			switch {
			case out.Attached:
				reads = append(reads, op)
			case !in.MayDrop:
				detached = append(detached, op)
			}
		case "logout":
			// A detached logout may still end the family: it presented
			// one of the family's IDs, and may have followed it.
			deathCauses = append(deathCauses, op)
			if out.OK && out.Attached {
				definiteDeath = min(definiteDeath, op.Return)
			}
		case "crash":
			deathCauses = append(deathCauses, op)
		}
	}

	// The longest read fixes the order of every value read: each read
	// must be a prefix of it, list only values appended to the family,
	// each once.
	var longest []string
	for _, r := range reads {
		if vs := r.Output.(SessionOut).Values; len(vs) > len(longest) {
			longest = vs
		}
	}
	index := map[string]int{}
	for i, v := range longest {
		if _, dup := index[v]; dup {
			return fmt.Sprintf("value %s applied twice: %v", v, longest)
		}
		a, ok := appends[v]
		if !ok || !a.mayApply {
			return fmt.Sprintf("value %s was never appended to the family, or by a request that did not load it: %v", v, longest)
		}
		index[v] = i
	}
	for _, r := range reads {
		vs := r.Output.(SessionOut).Values
		if !slices.Equal(vs, longest[:len(vs)]) {
			return fmt.Sprintf("two reads disagree on the family's list:\n  %s\n  longest read %v", describe(r), longest)
		}
	}

	if len(detached) > 0 && len(deathCauses) == 0 {
		return fmt.Sprintf("the family vanished while alive: no logout or crash, yet\n  %s\nthe family's history:\n%s",
			describe(detached[0]), history(ops, describe))
	}
	// The family ends within the interval of one of the causes (the
	// first to take effect), or not at all when nothing says it did: try
	// each.
	var candidates []*porcupine.Operation
	if len(detached) == 0 && definiteDeath == Unknown {
		candidates = append(candidates, nil)
	}
	for i := range deathCauses {
		if deathCauses[i].Call < definiteDeath {
			candidates = append(candidates, &deathCauses[i])
		}
	}
	var first []int
	var firstNodes []listNode
	for _, cause := range candidates {
		nodes := orderGraph(longest, index, appends, reads, detached, cause, definiteDeath, describe)
		cycle := findCycle(nodes)
		if cycle == nil {
			return ""
		}
		if first == nil {
			first, firstNodes = cycle, nodes
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "not linearizable: these operations must each come before the next, and the last before the first:\n")
	for _, n := range first {
		fmt.Fprintf(&b, "  %s\n", firstNodes[n].desc)
	}
	fmt.Fprintf(&b, "(order of the family's values as read: %v)", longest)
	return b.String()
}

// orderGraph returns the order graph of a family whose end, if cause is
// not nil, is cause's doing (and no later than definiteDeath): the
// appends read or certain, the attached reads, the end and the detached
// reads after it, with an edge from each operation to every one that
// must come after it.
func orderGraph(longest []string, index map[string]int, appends map[string]familyAppend, reads, detached []porcupine.Operation,
	cause *porcupine.Operation, definiteDeath int64, describe func(porcupine.Operation) string) []listNode {
	var nodes []listNode
	add := func(desc string, call, ret int64) int {
		nodes = append(nodes, listNode{desc: desc, call: call, ret: ret})
		return len(nodes) - 1
	}
	edge := func(from, to int) { nodes[from].successors = append(nodes[from].successors, to) }
	listed := make([]int, len(longest)) // node of each value of longest
	for i, v := range longest {
		op := appends[v].op
		listed[i] = add(describe(op), op.Call, op.Return)
		if i > 0 {
			edge(listed[i-1], listed[i])
		}
	}
	var unread []int // certain appends no read shows
	for _, v := range slices.Sorted(maps.Keys(appends)) {
		if a := appends[v]; a.mustApply {
			if _, ok := index[v]; !ok {
				unread = append(unread, add(describe(a.op)+" (seen by no read)", a.op.Call, a.op.Return))
			}
		}
	}
	readNodes := make([]int, len(reads))
	for i, r := range reads {
		n := len(r.Output.(SessionOut).Values)
		readNodes[i] = add(describe(r), r.Call, r.Return)
		if n > 0 {
			edge(listed[n-1], readNodes[i])
		}
		if n < len(longest) {
			edge(readNodes[i], listed[n])
		}
		for _, u := range unread {
			edge(readNodes[i], u) // no read saw it: it came after them all, or after the end
		}
	}
	if cause != nil {
		end := add("the family's end, by "+describe(*cause), cause.Call, min(cause.Return, definiteDeath))
		for _, r := range readNodes {
			edge(r, end)
		}
		for _, d := range detached {
			edge(end, add(describe(d), d.Call, d.Return))
		}
	}
	for i := range nodes {
		for j := range nodes {
			if i != j && nodes[i].ret != Unknown && nodes[i].ret < nodes[j].call {
				edge(i, j)
			}
		}
	}
	return nodes
}

// findCycle returns the nodes of a cycle of the graph, in order, or nil.
func findCycle(nodes []listNode) []int {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(nodes))
	parent := make([]int, len(nodes))
	for start := range nodes {
		if state[start] != unseen {
			continue
		}
		// Iterative depth-first search: histories have thousands of
		// operations per family at most, but recursion would still be
		// deep.
		type frame struct{ node, next int }
		stack := []frame{{start, 0}}
		state[start] = onPath
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(nodes[top.node].successors) {
				state[top.node] = done
				stack = stack[:len(stack)-1]
				continue
			}
			s := nodes[top.node].successors[top.next]
			top.next++
			switch state[s] {
			case unseen:
				state[s], parent[s] = onPath, top.node
				stack = append(stack, frame{s, 0})
			case onPath:
				cycle := []int{s}
				for n := top.node; n != s; n = parent[n] {
					cycle = append(cycle, n)
				}
				cycle = append(cycle[:1], reversed(cycle[1:])...)
				return cycle
			}
		}
	}
	return nil
}

func reversed(s []int) []int {
	slices.Reverse(s)
	return s
}
