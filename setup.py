from packaging.version import parse  # pkg_resources.parse_version is gone from current setuptools
from configparser import ConfigParser
from pathlib import Path
import setuptools, shlex
from setuptools.command.build_py import build_py

assert parse(setuptools.__version__) >= parse('36.2')

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o: cfg[o] for o in cfg_keys}

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.9 3.10 3.11 3.12 3.13'.split()

requirements = shlex.split(cfg.get('requirements', ''))
study_requirements = shlex.split(cfg.get('study_requirements', ''))
docs_requirements = shlex.split(cfg.get('docs_requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', '')) + study_requirements + docs_requirements


class build_py_with_notebooks(build_py):
    "Also ship the study notebooks (nbs/study/*.ipynb) as package data, in nncomp/study_notebooks/: nncomp_study runs them."
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False): return   # an editable install reads nbs/study/ of the checkout
        dest = Path(self.build_lib)/cfg['lib_path']/'study_notebooks'
        self.mkpath(str(dest))
        for nb in sorted(Path('nbs/study').glob('*.ipynb')): self.copy_file(str(nb), str(dest/nb.name))

min_python = cfg['min_python']
lic = licenses[cfg['license'].lower()]

setuptools.setup(
    name=cfg['lib_name'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title(),
                 'License :: ' + lic[1]] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['nncomp', 'nncomp.*'], exclude=['nncomp.tools', 'nncomp.tools.*']),  # tooling stays in the clone
    include_package_data=True,
    install_requires=requirements,
    extras_require={'study': study_requirements, 'docs': docs_requirements, 'dev': dev_requirements},
    cmdclass={'build_py': build_py_with_notebooks},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']},
    **setup_cfg)
