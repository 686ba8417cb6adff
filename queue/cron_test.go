package queue_test

import (
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests must not depend on the host's zoneinfo

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

func cronTime(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	require.NoError(t, err)
	return v
}

func TestScheduleNextUTC(t *testing.T) {
	tests := []struct {
		spec, after, want string
	}{
		{"*/15 * * * *", "2026-01-31 23:50", "2026-02-01 00:00"},
		{"*/15 * * * *", "2026-01-31 23:45", "2026-02-01 00:00"},
		{"*/15 * * * *", "2026-01-31 23:44", "2026-01-31 23:45"},
		{"0 0 31 * *", "2026-01-31 00:00", "2026-03-31 00:00"},
		{"0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"},
		{"30 9 * * MON-FRI", "2026-11-27 10:00", "2026-11-30 09:30"},
		{"30 9 * * mon-fri", "2026-11-27 09:29", "2026-11-27 09:30"},
		{"0 12 1 JAN,JUL *", "2026-07-01 12:00", "2027-01-01 12:00"},
		{"0 0 13 * FRI", "2026-01-01 00:00", "2026-01-02 00:00"}, // either day field
		{"0 0 13 * FRI", "2026-02-06 00:00", "2026-02-13 00:00"},
		{"0 0 13 * *", "2026-02-06 00:00", "2026-02-13 00:00"},
		{"0 0 * * 7", "2026-11-27 00:00", "2026-11-29 00:00"}, // 7 is Sunday
		{"0 0 * * SUN", "2026-11-27 00:00", "2026-11-29 00:00"},
		{"5/20 * * * *", "2026-05-05 10:45", "2026-05-05 11:05"},
		{"5/20 * * * *", "2026-05-05 10:05", "2026-05-05 10:25"},
		{"0 */6 * * *", "2026-05-05 18:00", "2026-05-06 00:00"},
		{"0 8-10/2 * * *", "2026-05-05 08:00", "2026-05-05 10:00"},
		{"59 23 31 DEC *", "2026-06-01 00:00", "2026-12-31 23:59"},
		{"0,30 * * * *", "2026-12-31 23:59", "2027-01-01 00:00"},
		{"@hourly", "2026-05-05 10:00", "2026-05-05 11:00"},
		{"@daily", "2026-12-31 12:00", "2027-01-01 00:00"},
		{"@midnight", "2026-12-31 12:00", "2027-01-01 00:00"},
		{"@weekly", "2026-11-27 12:00", "2026-11-29 00:00"},
		{"@monthly", "2026-02-27 12:00", "2026-03-01 00:00"},
		{"@yearly", "2026-02-27 12:00", "2027-01-01 00:00"},
		{"@every 90m", "2026-01-01 00:00", "2026-01-01 01:30"},
		{"@every 1h", "2026-01-01 10:30", "2026-01-01 11:00"},
		{"  @every 1h  ", "2026-01-01 10:59", "2026-01-01 11:00"},
	}
	for _, tt := range tests {
		t.Run(tt.spec+" after "+tt.after, func(t *testing.T) {
			s, err := queue.ParseSchedule(tt.spec)
			require.NoError(t, err)
			got := s.Next(cronTime(t, time.UTC, tt.after))
			require.Equal(t, cronTime(t, time.UTC, tt.want), got)
		})
	}
}

func TestScheduleNextSecondsTruncated(t *testing.T) {
	s, err := queue.ParseSchedule("@hourly")
	require.NoError(t, err)
	after := time.Date(2026, 5, 5, 10, 59, 59, 999, time.UTC)
	require.Equal(t, time.Date(2026, 5, 5, 11, 0, 0, 0, time.UTC), s.Next(after))
	require.Equal(t, time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC), s.Next(time.Date(2026, 5, 5, 11, 0, 0, 0, time.UTC)))
}

func TestScheduleNever(t *testing.T) {
	s, err := queue.ParseSchedule("0 0 30 2 *")
	require.NoError(t, err)
	require.True(t, s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero())
}

func TestScheduleNextInZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	tests := []struct {
		name  string
		loc   *time.Location
		spec  string
		after time.Time
		want  time.Time
	}{
		{
			name: "plain", loc: ny, spec: "0 9 * * *",
			after: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), // 08:00 EDT
			want:  time.Date(2026, 7, 1, 13, 0, 0, 0, time.UTC),
		},
		{
			name: "fall back runs the repeated time once", loc: ny, spec: "30 1 * * *",
			after: time.Date(2026, 11, 1, 0, 0, 0, 0, ny),
			want:  time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // 01:30 EDT
		},
		{
			name: "after the first of a repeated time", loc: ny, spec: "30 1 * * *",
			after: time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC),
			want:  time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC), // next day 01:30 EST
		},
		{
			name: "across a DST change", loc: berlin, spec: "0 9 * * *",
			after: time.Date(2026, 3, 28, 10, 0, 0, 0, berlin),
			want:  time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC), // 09:00 CEST
		},
		{
			name: "month end in the zone, not in UTC", loc: ny, spec: "0 22 31 * *",
			after: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			want:  time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC), // Dec 31 22:00 EST
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := queue.ParseScheduleInLocation(tt.spec, tt.loc)
			require.NoError(t, err)
			got := s.Next(tt.after)
			require.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
		})
	}
}

// TestScheduleAcrossDST lists the slots of schedules through both
// daylight-saving changes of 2025 in New York (clocks skip 02:00-03:00 on
// March 9 and repeat 01:00-02:00 on November 2): a fixed-time schedule runs
// a skipped slot at the end of the gap and a repeated one once; a wildcard
// schedule follows real time.
func TestScheduleAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	est, edt := time.FixedZone("EST", -5*3600), time.FixedZone("EDT", -4*3600)
	at := func(loc *time.Location, month time.Month, day, hour, min int) time.Time {
		return time.Date(2025, month, day, hour, min, 0, 0, loc)
	}
	for _, tt := range []struct {
		name string
		spec string
		from time.Time
		want []time.Time
	}{
		{"fixed, spring forward: at the end of the gap", "30 2 * * *", at(est, 3, 8, 0, 0),
			[]time.Time{at(est, 3, 8, 2, 30), at(edt, 3, 9, 3, 0), at(edt, 3, 10, 2, 30)}},
		{"fixed, two slots in the gap: one run", "0,30 2 * * *", at(est, 3, 9, 0, 0),
			[]time.Time{at(edt, 3, 9, 3, 0), at(edt, 3, 10, 2, 0), at(edt, 3, 10, 2, 30)}},
		{"fixed, a slot at the gap's end too: one run", "30 2,3 * * *", at(est, 3, 9, 0, 0),
			[]time.Time{at(edt, 3, 9, 3, 0), at(edt, 3, 9, 3, 30), at(edt, 3, 10, 2, 30)}},
		{"fixed, fall back: the first pass only", "30 1 * * *", at(edt, 11, 1, 0, 0),
			[]time.Time{at(edt, 11, 1, 1, 30), at(edt, 11, 2, 1, 30), at(est, 11, 3, 1, 30)}},
		{"wildcard, spring forward: the skipped hour has no slots", "30 * * * *", at(est, 3, 9, 0, 45),
			[]time.Time{at(est, 3, 9, 1, 30), at(edt, 3, 9, 3, 30), at(edt, 3, 9, 4, 30)}},
		{"wildcard, fall back: both passes", "*/30 * * * *", at(edt, 11, 2, 0, 45),
			[]time.Time{at(edt, 11, 2, 1, 0), at(edt, 11, 2, 1, 30), at(est, 11, 2, 1, 0), at(est, 11, 2, 1, 30), at(est, 11, 2, 2, 0)}},
		{"@hourly, fall back: every real hour", "@hourly", at(edt, 11, 2, 0, 30),
			[]time.Time{at(edt, 11, 2, 1, 0), at(est, 11, 2, 1, 0), at(est, 11, 2, 2, 0)}},
		{"@daily, spring forward: unaffected", "@daily", at(est, 3, 8, 12, 0),
			[]time.Time{at(est, 3, 9, 0, 0), at(edt, 3, 10, 0, 0)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := queue.ParseScheduleInLocation(tt.spec, ny)
			require.NoError(t, err)
			after := tt.from
			for i, want := range tt.want {
				got := s.Next(after)
				require.True(t, want.Equal(got), "slot %d: got %v, want %v", i, got.In(ny), want)
				after = got
			}
		})
	}
}

// TestScheduleDSTBruteForce checks Next around daylight-saving changes
// against a scan of real minutes, in New York (1 hour) and at Lord Howe
// Island (30 minutes): a wildcard schedule is due at every instant whose
// wall time matches; a fixed-time one at the first instant of a matching
// wall time, and at the end of a gap that skipped one.
func TestScheduleDSTBruteForce(t *testing.T) {
	specs := []struct {
		spec         string
		wildcard     bool
		minute, hour func(int) bool
	}{
		{"*/15 * * * *", true, func(m int) bool { return m%15 == 0 }, cronAll},
		{"10,40 * * * *", true, func(m int) bool { return m == 10 || m == 40 }, cronAll}, // the hour field's "*" makes it wildcard
		{"*/20 1-3 * * *", true, func(m int) bool { return m%20 == 0 }, func(h int) bool { return h >= 1 && h <= 3 }},
		{"30 2 * * *", false, cronEq(30), cronEq(2)},
		{"0,15,45 1,2 * * *", false, func(m int) bool { return m == 0 || m == 15 || m == 45 }, func(h int) bool { return h == 1 || h == 2 }},
	}
	var zones []*time.Location
	for _, name := range []string{"America/New_York", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(name)
		require.NoError(t, err)
		zones = append(zones, loc)
	}
	wallOf := func(t time.Time) [5]int {
		return [5]int{t.Year(), t.YearDay(), t.Hour(), t.Minute(), 0}
	}
	for _, loc := range zones {
		// The zone's changes in 2025: where the offset differs an hour apart.
		var changes []time.Time
		for h := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC); h.Year() == 2025; h = h.Add(time.Hour) {
			_, a := h.In(loc).Zone()
			if _, b := h.Add(time.Hour).In(loc).Zone(); a != b {
				changes = append(changes, h)
			}
		}
		require.Len(t, changes, 2, loc)
		for _, sp := range specs {
			s, err := queue.ParseScheduleInLocation(sp.spec, loc)
			require.NoError(t, err)
			due := func(l time.Time) bool { return sp.minute(l.Minute()) && sp.hour(l.Hour()) }
			want := func(after time.Time) time.Time {
				for u := after.Truncate(time.Minute).Add(time.Minute); ; u = u.Add(time.Minute) {
					l, prev := u.In(loc), u.Add(-time.Minute).In(loc)
					if sp.wildcard {
						if due(l) {
							return u
						}
						continue
					}
					first := true // l's wall time never read before u
					for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
						if wallOf(u.Add(-back).In(loc)) == wallOf(l) {
							first = false
						}
					}
					if due(l) && first {
						return u
					}
					// A gap ends at u: the wall minutes it skipped, read in
					// the offset before it.
					_, po := prev.Zone()
					_, lo := l.Zone()
					for k := 1; k <= (lo-po)/60; k++ {
						if due(prev.Add(time.Duration(k) * time.Minute).In(time.FixedZone("", po))) {
							return u
						}
					}
				}
			}
			for _, ch := range changes {
				for off := -150 * time.Minute; off <= 150*time.Minute; off += 7 * time.Minute {
					after := ch.Add(off).Add(13 * time.Second)
					w := want(after)
					require.True(t, w.Equal(s.Next(after)), "%s in %v after %v: got %v, want %v", sp.spec, loc, after.In(loc), s.Next(after).In(loc), w.In(loc))
				}
			}
		}
	}
}

// TestScheduleZonePrefix: a spec may name its zone (CRON_TZ= or TZ=, as
// robfig/cron), overriding the location it is parsed in; an unknown zone is
// an error.
func TestScheduleZonePrefix(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	after := time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC)
	want := time.Date(2026, 5, 5, 9, 0, 0, 0, tokyo) // 00:00 UTC
	for _, spec := range []string{"CRON_TZ=Asia/Tokyo 0 9 * * *", "TZ=Asia/Tokyo 0 9 * * *", "  CRON_TZ=Asia/Tokyo   0 9 * * *"} {
		s, err := queue.ParseScheduleInLocation(spec, time.UTC)
		require.NoError(t, err, spec)
		got := s.Next(after.Add(-time.Minute))
		require.True(t, want.Equal(got), "%s: got %v, want %v", spec, got, want)
	}
	s, err := queue.ParseSchedule("CRON_TZ=Asia/Tokyo @daily")
	require.NoError(t, err)
	require.True(t, time.Date(2026, 5, 6, 0, 0, 0, 0, tokyo).Equal(s.Next(after)))
	for _, spec := range []string{"CRON_TZ=Mars/Olympus 0 9 * * *", "CRON_TZ= 0 9 * * *", "TZ=Asia/Tokyo", "CRON_TZ=Asia/Tokyo 61 * * * *"} {
		_, err := queue.ParseSchedule(spec)
		require.ErrorIs(t, err, queue.ErrInvalidConfig, spec)
	}
}

// TestScheduleNextBruteForce checks Next against a minute-by-minute scan.
func TestScheduleNextBruteForce(t *testing.T) {
	specs := []struct {
		spec                          string
		minute, hour, dom, month, dow func(int) bool
	}{
		{"*/7 3-5 * * *", func(m int) bool { return m%7 == 0 }, func(h int) bool { return h >= 3 && h <= 5 }, cronAll, cronAll, cronAll},
		{"10 0 1,15 * *", cronEq(10), cronEq(0), func(d int) bool { return d == 1 || d == 15 }, cronAll, cronAll},
		{"0 12 * * 1,3,5", cronEq(0), cronEq(12), cronAll, cronAll, func(d int) bool { return d == 1 || d == 3 || d == 5 }},
		{"15 6 * FEB-APR 0", cronEq(15), cronEq(6), cronAll, func(m int) bool { return m >= 2 && m <= 4 }, cronEq(0)},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sp := range specs {
		s, err := queue.ParseSchedule(sp.spec)
		require.NoError(t, err, sp.spec)
		match := func(v time.Time) bool {
			return sp.minute(v.Minute()) && sp.hour(v.Hour()) && sp.dom(v.Day()) && sp.month(int(v.Month())) && sp.dow(int(v.Weekday()))
		}
		for range 20 {
			after := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Second)
			want := after.Truncate(time.Minute).Add(time.Minute)
			for !match(want) {
				want = want.Add(time.Minute)
			}
			require.Equal(t, want, s.Next(after), "%s after %v", sp.spec, after)
		}
	}
}

func cronAll(int) bool            { return true }
func cronEq(v int) func(int) bool { return func(x int) bool { return x == v } }

func TestParseScheduleInvalid(t *testing.T) {
	for _, spec := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
		"* * 32 * *", "* * * 13 *", "* * * 0 *", "* * * * 8", "*/0 * * * *",
		"*/61 * * * *", "5-1 * * * *", "1,,2 * * * *", "-5 * * * *", "a * * * *",
		"* * * FOO *", "* * * * MONDAY", "1/x * * * *", "0 0 L 2 *",
		"@every", "@every 0s", "@every 500ms", "@every x", "@every -1h",
		"@everyday", "@foo", "@hourly 5",
	} {
		_, err := queue.ParseSchedule(spec)
		require.ErrorIs(t, err, queue.ErrInvalidConfig, "spec %q", spec)
	}
}

// TestParseScheduleInLocationNilAndEvery: a nil location is UTC, as in
// SchedulerConfig, and a location does not move "@every" slots.
func TestParseScheduleInLocationNilAndEvery(t *testing.T) {
	after := time.Date(2026, 5, 5, 10, 30, 0, 0, time.UTC)
	s, err := queue.ParseScheduleInLocation("0 12 * * *", nil)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC), s.Next(after))

	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	inUTC, err := queue.ParseSchedule("@every 90m")
	require.NoError(t, err)
	inTokyo, err := queue.ParseScheduleInLocation("@every 90m", tokyo)
	require.NoError(t, err)
	require.True(t, inUTC.Next(after).Equal(inTokyo.Next(after)), "@every %v vs %v", inUTC.Next(after), inTokyo.Next(after))

	_, err = queue.ParseScheduleInLocation("61 * * * *", tokyo)
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
}

// BenchmarkScheduleNext: one slot of a fixed-time and a wildcard schedule in a
// zone with daylight saving (what a Scheduler computes per slot).
func BenchmarkScheduleNext(b *testing.B) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(b, err)
	for _, spec := range []string{"30 2 * * *", "*/15 * * * *"} {
		b.Run(spec, func(b *testing.B) {
			s, err := queue.ParseScheduleInLocation(spec, ny)
			require.NoError(b, err)
			after := time.Date(2026, 5, 5, 10, 7, 0, 0, time.UTC)
			b.ReportAllocs()
			for b.Loop() {
				after = s.Next(after)
			}
		})
	}
}
