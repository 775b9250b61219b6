"""Publication: what the rulebooks make public, portal queries, open data, credit reports, watchlists."""
