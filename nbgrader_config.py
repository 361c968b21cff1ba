# nbgrader reads nbgrader_config.py from the folder it runs in; the course's
# configuration lives in autograder/.
load_subconfig("autograder/nbgrader_config.py")  # noqa: F821
