from glob import glob

from setuptools import find_packages, setup

package_name = 'autofocus_motor'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='autofocus maintainers',
    maintainer_email='maintainers@autofocus.dev',
    description='Focus motor driver node (gpiozero) for the autofocus package set.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'motor_driver = autofocus_motor.motor_driver_node:main',
            'calibrate_dc = autofocus_motor.calibrate_dc:main',
        ],
    },
)
