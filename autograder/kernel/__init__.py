"""What runs inside or around a learner's grading kernel, and nothing else.

* ``jail.py``: the bubblewrap command line every grading kernel runs in;
* ``launcher.py``: started inside the jail in place of ``python -m ipykernel_launcher``
  (standard library only: it is run as a file, never imported into the kernel as part of
  this package);
* ``guard.py``: installed by the launcher into the kernel before any learner code;
* ``redact.py``: the copy of ``backprop`` the jailed kernel imports, the learner's exercises
  refusing to run.

Everything else in ``autograder`` runs in the grader's own processes.
"""
