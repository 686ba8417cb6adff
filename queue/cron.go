package queue

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// A Schedule says when a periodic job is due.
type Schedule interface {
	// Next returns the first slot strictly after after, or the zero Time
	// when there is none (a date that never comes, like February 30).
	Next(after time.Time) time.Time
}

// ParseSchedule parses a schedule spec:
//
//   - a standard 5-field cron line "minute hour day-of-month month
//     day-of-week" (minute 0-59, hour 0-23, day 1-31, month 1-12 or
//     JAN-DEC, weekday 0-7 or SUN-SAT with 0 and 7 both Sunday), each
//     field "*", a value, a range "a-b", a list "a,b-c" and a step "*/n"
//     or "a-b/n" or "a/n" (a to the field's end). As in Vixie cron, when
//     both day-of-month and day-of-week are restricted (neither covers
//     every value) a day matching either is due;
//   - "@yearly" (or "@annually"), "@monthly", "@weekly", "@daily" (or
//     "@midnight") and "@hourly", the usual cron shorthands;
//   - "@every <duration>" (time.ParseDuration, at least 1s): slots at the
//     multiples of the duration since the zero time, independent of when
//     the schedule was parsed, so that every process agrees on them.
//
// Cron fields are wall-clock times in UTC unless the spec names its zone
// ("CRON_TZ=Asia/Tokyo 0 9 * * *"); ParseScheduleInLocation reads them in
// another location.
//
// A bad spec is an error wrapping ErrInvalidConfig.
func ParseSchedule(spec string) (Schedule, error) {
	return ParseScheduleInLocation(spec, time.UTC)
}

// ParseScheduleInLocation is like ParseSchedule but reads a cron spec's
// fields as wall-clock times in loc, as time.ParseInLocation does for a
// time; nil means UTC. A spec may name its own zone instead, as robfig/cron
// and asynq do: "CRON_TZ=America/New_York 30 2 * * *" (or "TZ=..."); an
// unknown zone is an error. Zones do not change "@every" schedules.
//
// Across a daylight-saving change the rule is ISC cron's, and it depends
// on whether the minute or hour field starts with "*":
//
//   - a fixed-time schedule (neither does, as "30 2 * * *" or "@daily")
//     runs a slot whose wall time the clocks skip at the first instant after
//     the gap, once however many slots fell in it (at 03:00 when 02:00-03:00
//     is skipped), and a wall time that occurs twice only the first time:
//     a daily job runs once every day;
//   - a wildcard schedule (one does, as "*/15 * * * *" or "@hourly") follows
//     real time: slots in a skipped hour do not exist, and a repeated hour's
//     slots are due in both of its passes, so that it never pauses.
func ParseScheduleInLocation(spec string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	s := strings.TrimSpace(spec)
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			name, after, _ := strings.Cut(rest, " ")
			zone, err := time.LoadLocation(name)
			if err != nil || name == "" {
				return nil, scheduleError(spec, "time zone %q: unknown", name)
			}
			loc, s = zone, strings.TrimSpace(after)
			break
		}
	}
	if rest, ok := strings.CutPrefix(s, "@every"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, scheduleError(spec, "%v", err)
		}
		if d < time.Second {
			return nil, scheduleError(spec, "@every needs at least 1s")
		}
		return every(d), nil
	}
	switch strings.ToLower(s) {
	case "@yearly", "@annually":
		s = "0 0 1 1 *"
	case "@monthly":
		s = "0 0 1 * *"
	case "@weekly":
		s = "0 0 * * 0"
	case "@daily", "@midnight":
		s = "0 0 * * *"
	case "@hourly":
		s = "0 * * * *"
	default:
		if strings.HasPrefix(s, "@") {
			return nil, scheduleError(spec, "unknown shorthand")
		}
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return nil, scheduleError(spec, "want 5 fields (minute hour day-of-month month day-of-week), have %d", len(fields))
	}
	// ISC cron's test for a wildcard job: the minute or hour field
	// starts with "*".
	c := &cron{loc: loc, wildcard: strings.HasPrefix(fields[0], "*") || strings.HasPrefix(fields[1], "*")}
	var err error
	for i, f := range []struct {
		dst   *uint64
		lo    int
		hi    int
		names []string
		star  *bool
	}{
		{dst: &c.minute, lo: 0, hi: 59},
		{dst: &c.hour, lo: 0, hi: 23},
		{dst: &c.dom, lo: 1, hi: 31, star: &c.domStar},
		{dst: &c.month, lo: 1, hi: 12, names: monthNames},
		{dst: &c.dow, lo: 0, hi: 7, names: dayNames, star: &c.dowStar},
	} {
		var star bool
		*f.dst, star, err = parseField(fields[i], f.lo, f.hi, f.names)
		if err != nil {
			return nil, scheduleError(spec, "%s field %q: %v", fieldNames[i], fields[i], err)
		}
		if f.star != nil {
			*f.star = star
		}
	}
	return c, nil
}

func scheduleError(spec, format string, args ...any) error {
	return fmt.Errorf("%w: schedule %q: %s", ErrInvalidConfig, spec, fmt.Sprintf(format, args...))
}

var (
	fieldNames = []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

// parseField parses one cron field into a bit set of its values; star
// reports whether the field is unrestricted: it covers every value.
func parseField(f string, lo, hi int, names []string) (set uint64, star bool, err error) {
	if f == "" {
		return 0, false, fmt.Errorf("empty")
	}
	for part := range strings.SplitSeq(f, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			step, err = strconv.Atoi(stepStr)
			if err != nil || step < 1 || step > hi-lo+1 {
				return 0, false, fmt.Errorf("bad step %q", stepStr)
			}
		}
		var a, b int
		switch {
		case rng == "*":
			a, b = lo, hi
			if names != nil && hi == 7 { // day-of-week: * is 0-6
				b = 6
			}
		case strings.Contains(rng, "-"):
			as, bs, _ := strings.Cut(rng, "-")
			if a, err = fieldValue(as, lo, hi, names); err != nil {
				return 0, false, err
			}
			if b, err = fieldValue(bs, lo, hi, names); err != nil {
				return 0, false, err
			}
			if b < a {
				return 0, false, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			if a, err = fieldValue(rng, lo, hi, names); err != nil {
				return 0, false, err
			}
			b = a
			if hasStep { // "a/n" means a to the end of the field
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	full := fullSet(lo, hi)
	if hi == 7 { // day-of-week: 7 is 0 again
		full = fullSet(0, 6)
		set |= set >> 7 & 1
		set &^= 1 << 7
	}
	return set, set == full, nil
}

func fullSet(lo, hi int) uint64 { return (1<<(hi+1) - 1) &^ (1<<lo - 1) }

// fieldValue reads a number or a name (case-insensitive) within [lo, hi].
func fieldValue(s string, lo, hi int, names []string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			if len(names) == 12 {
				return i + 1, nil // months count from 1
			}
			return i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("value %q not in %d-%d", s, lo, hi)
	}
	return v, nil
}

// every is "@every d".
type every time.Duration

func (e every) Next(after time.Time) time.Time {
	d := time.Duration(e)
	return after.Truncate(d).Add(d)
}

func (e every) String() string { return "@every " + time.Duration(e).String() }

// cron is a parsed 5-field spec: bit v of a field is set when value v is
// due.
type cron struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
	loc                           *time.Location
	// wildcard: the minute or hour field starts with "*"; see
	// ParseScheduleInLocation for what it changes across DST changes.
	wildcard bool
}

// maxSearchYears bounds Next's search: every satisfiable spec has a slot
// within 8 years (February 29 skips 2100), so 10 years is enough.
const maxSearchYears = 10

func (c *cron) dayDue(t time.Time) bool {
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	default:
		return dom || dow
	}
}

// Next searches the wall clock of c's location minute by minute, skipping
// whole months, days and hours that cannot match. It walks a UTC time
// standing for the wall clock so that daylight-saving changes do not
// disturb the arithmetic, and turns each matching wall time into the
// instants it stands for (see at).
func (c *cron) Next(after time.Time) time.Time {
	local := after.In(c.loc)
	w := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), 0, 0, time.UTC)
	if c.wildcard && !steady(after, c.loc) {
		// after may lie in the first pass of a repeated hour, whose second
		// pass has earlier wall times still to come: start the walk before
		// them (no zone repeats more than 2 hours), and let at pick the
		// instants after after.
		w = w.Add(-2 * time.Hour)
	}
	w = w.Add(time.Minute)
	limit := w.Year() + maxSearchYears
	for w.Year() <= limit {
		switch {
		case c.month&(1<<int(w.Month())) == 0:
			w = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.dayDue(w):
			w = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
		case c.hour&(1<<w.Hour()) == 0:
			w = w.Truncate(time.Hour).Add(time.Hour)
		case c.minute&(1<<w.Minute()) == 0:
			// Jump to the next due minute of this hour, if any.
			rest := c.minute >> w.Minute()
			if rest == 0 {
				w = w.Truncate(time.Hour).Add(time.Hour)
			} else {
				w = w.Add(time.Duration(bits.TrailingZeros64(rest)) * time.Minute)
			}
		default:
			if t, second, ok := c.at(w, after); ok {
				if second {
					// Later wall times of the repeated hour's first pass
					// come earlier in real time.
					return c.firstPassBefore(w, after, t)
				}
				return t
			}
			w = w.Add(time.Minute)
		}
	}
	return time.Time{}
}

// at returns the first instant after after at which the wall time w (a UTC
// time standing for a wall clock in c.loc) is due, if any: the instant
// itself; for a wildcard schedule the second pass of a repeated wall time
// too (second reports it); for a fixed-time one, the end of the gap for a
// skipped wall time.
func (c *cron) at(w, after time.Time) (t time.Time, second, ok bool) {
	first, last, exists := c.instants(w)
	switch {
	case !exists: // w is skipped: clocks jumped over it
		if c.wildcard {
			return time.Time{}, false, false
		}
		end := c.gapEnd(w)
		return end, false, end.After(after)
	case first.After(after):
		return first, false, true
	case c.wildcard && last.After(after):
		return last, true, true
	}
	return time.Time{}, false, false
}

// instants returns the first and last instants whose wall clock in c.loc
// reads w (a UTC time standing for a wall clock): the same one but in a
// repeated hour; exists is false for a wall time the clocks skip.
// (time.Date picks either instant of a repeated wall time, depending on
// the zone.)
func (c *cron) instants(w time.Time) (first, last time.Time, exists bool) {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, c.loc)
	if steady(t, c.loc) {
		return t, t, true
	}
	for _, near := range []time.Time{t.Add(-3 * time.Hour), t, t.Add(3 * time.Hour)} {
		_, off := near.Zone()
		u := w.Add(-time.Duration(off) * time.Second).In(c.loc)
		if !sameWall(u, w) {
			continue
		}
		if !exists || u.Before(first) {
			first = u
		}
		if !exists || u.After(last) {
			last = u
		}
		exists = true
	}
	return first, last, exists
}

// firstPassBefore returns the first instant after after and before t2, the
// second pass of the repeated wall time w, of a due wall time later than w
// in its first pass, or t2 when there is none.
func (c *cron) firstPassBefore(w, after, t2 time.Time) time.Time {
	for m := w.Add(time.Minute); ; m = m.Add(time.Minute) {
		t, _, exists := c.instants(m)
		if !exists {
			continue
		}
		if !t.Before(t2) {
			return t2
		}
		if t.After(after) && c.wallDue(m) {
			return t
		}
	}
}

// wallDue reports whether every field matches the wall time w.
func (c *cron) wallDue(w time.Time) bool {
	return c.month&(1<<int(w.Month())) != 0 && c.dayDue(w) && c.hour&(1<<w.Hour()) != 0 && c.minute&(1<<w.Minute()) != 0
}

// steady reports whether loc keeps one offset from 3 hours before t to 3
// hours after it: no clock change near t (no zone changes twice in 6 hours).
func steady(t time.Time, loc *time.Location) bool {
	_, before := t.Add(-3 * time.Hour).In(loc).Zone()
	_, after := t.Add(3 * time.Hour).In(loc).Zone()
	return before == after
}

// sameWall reports whether t's wall clock reads w's (a UTC time standing
// for a wall clock).
func sameWall(t, w time.Time) bool {
	return t.Year() == w.Year() && t.YearDay() == w.YearDay() && t.Hour() == w.Hour() && t.Minute() == w.Minute()
}

// gapEnd is the first instant after the skipped wall time w: the first
// later wall minute that exists, as an instant.
func (c *cron) gapEnd(w time.Time) time.Time {
	for m := w.Add(time.Minute); ; m = m.Add(time.Minute) {
		if t, _, exists := c.instants(m); exists {
			return t
		}
	}
}
