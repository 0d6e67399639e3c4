"""From finished runs to what goes into a paper.

:mod:`.collect` reads every run's ``result.json`` into one table and
aggregates seeds; :mod:`.tables` lays the aggregate out like LA-Net's
Table 1 (LaTeX, Markdown, CSV), optionally beside the published numbers of
:mod:`.paper`; :mod:`.userstudy` measures how far label descriptors are from
human votes (JS divergence); :mod:`.plots` draws the figures.
"""
