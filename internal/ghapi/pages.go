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

// allItems gathers every page's items, each converted by conv.
func allItems[T, U any](op string, list func(page int) ([]T, *github.Response, error), conv func(T) U) ([]U, error) {
	var out []U
	err := eachItem(op, list, func(it T) bool {
		out = append(out, conv(it))
		return false
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// perPage is the most GitHub lists at once.
const perPage = 100

func listPage(page int) *github.ListOptions { return &github.ListOptions{PerPage: perPage, Page: page} }
