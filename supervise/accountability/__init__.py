"""The public accountability page (/public, 公开): figures per township and department with
small-count protection, and case summaries staff wrote and approved for publication (issue 17)."""
