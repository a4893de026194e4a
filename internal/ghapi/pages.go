package ghapi

import "github.com/google/go-github/v60/github"

// eachItem lists every page, from the first, and visits each item until
// visit says stop. list fetches one page (0 is the first); a failure is
// reported as op.
func eachItem[T any](op string, list func(page int) ([]T, *github.Response, error), visit func(T) (stop bool)) error {
	page := 0
	for {
		items, resp, err := list(page)
		if err != nil {
			return fail(op, resp, err)
		}
		for _, it := range items {
			if visit(it) {
				return nil
			}
		}
		if resp.NextPage == 0 {
			return nil
		}
		page = resp.NextPage
	}
}

// allItems gathers every page's items.
func allItems[T any](op string, list func(page int) ([]T, *github.Response, error)) ([]T, error) {
	var out []T
	err := eachItem(op, list, func(it T) bool {
		out = append(out, it)
		return false
	})
	return out, err
}

// perPage is the most GitHub lists at once.
const perPage = 100

func listPage(page int) *github.ListOptions { return &github.ListOptions{PerPage: perPage, Page: page} }
