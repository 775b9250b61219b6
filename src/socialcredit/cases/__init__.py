"""Due process: objections, repair applications, reviews, tips, deadlines, notices, subject access."""
