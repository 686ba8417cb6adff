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
			name: "spring forward skips the missing time", loc: ny, spec: "30 2 * * *",
			after: time.Date(2026, 3, 8, 0, 0, 0, 0, ny),
			want:  time.Date(2026, 3, 9, 2, 30, 0, 0, ny),
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
			name: "hourly through fall back", loc: ny, spec: "0 * * * *",
			after: time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC), // 01:00 EDT
			want:  time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC), // 02:00 EST; 01:00 EST is the same wall time
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
