"""The course's autograder: nbgrader configuration and preprocessors, the grading
kernel's sandbox and guard, and ``python -m autograder grade`` for whole batches."""
