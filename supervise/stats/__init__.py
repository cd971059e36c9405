"""Statistics (统计分析, issue 17): monthly summary rows kept by the workers, read by /staff/stats."""
