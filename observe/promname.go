package observe

import "strings"

// PrometheusName returns the name d has in Prometheus and other systems
// that keep the unit in the name, by OpenTelemetry's rules for them: dots
// become underscores, a unit in seconds or bytes is appended as _seconds or
// _bytes (an annotation in braces is dropped), and a counter ends in
// _total. scaleout.balance.picks is scaleout_balance_picks_total.
func PrometheusName(d Desc) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == ':':
			return r
		}
		return '_'
	}, d.Name)
	switch d.Unit {
	case "s":
		name += "_seconds"
	case "ms":
		name += "_milliseconds"
	case "By":
		name += "_bytes"
	}
	if d.Kind == KindCounter {
		name += "_total"
	}
	return name
}
