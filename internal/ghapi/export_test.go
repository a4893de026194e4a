package ghapi

// BaseURL is the API address the client's requests go to.
func BaseURL(c *Client) string { return c.gh.BaseURL.String() }
