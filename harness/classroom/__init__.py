"""Grade a whole class: ``make grade-class LAB=N SUBMISSIONS=<dir or CSV>``.

One module per job:

* :mod:`.roster` - who is in the class (a folder of student folders / fork roots, or a ``student,path`` CSV);
* :mod:`.fingerprint` - the content hash of a submission's staged files (what resuming compares);
* :mod:`.runner` - grades each submission in its own process group through ``./grade``, a bounded
  pool, a per-submission timeout, and nothing left running after a timeout or Ctrl-C;
* :mod:`.state` - what earlier runs graded (resume: unchanged submissions are skipped);
* :mod:`.gradebook` - ``gradebook.csv``, a feedback Markdown and a JUnit file per student, ``summary.md``;
* :mod:`.plots` - the pass rate per check and the score histogram (PNG, matplotlib);
* :mod:`.cli` - the command line and the rich progress display.

Scores are only ever read from each grading's JSON report, never from what a
grading printed: an app that prints lines looking like the grader's cannot
change the gradebook.
"""
