package shard

import "fmt"

// validate checks a member list: at least one member, names non-empty and
// distinct, weights at least 1. It returns the names in order and the total
// weight.
func validate(members []Member) (names []string, total int, err error) {
	if len(members) == 0 {
		return nil, 0, ErrNoShards
	}
	names = make([]string, len(members))
	seen := make(map[string]struct{}, len(members))
	for i, m := range members {
		if m.Name == "" {
			return nil, 0, fmt.Errorf("%w (member %d)", ErrEmptyName, i)
		}
		if _, dup := seen[m.Name]; dup {
			return nil, 0, fmt.Errorf("%w: %q", ErrDuplicateName, m.Name)
		}
		if m.Weight < 1 {
			return nil, 0, fmt.Errorf("%w: %q has weight %d", ErrInvalidWeight, m.Name, m.Weight)
		}
		seen[m.Name] = struct{}{}
		names[i] = m.Name
		total += m.Weight
	}
	return names, total, nil
}

// validateUnweighted is validate for strategies that give every shard the
// same share: a weight other than 1 is refused rather than silently ignored.
func validateUnweighted(members []Member) ([]string, error) {
	names, total, err := validate(members)
	if err != nil {
		return nil, err
	}
	if total != len(members) {
		for _, m := range members {
			if m.Weight != 1 {
				return nil, fmt.Errorf("%w: %q has weight %d; this strategy is unweighted", ErrInvalidWeight, m.Name, m.Weight)
			}
		}
	}
	return names, nil
}
