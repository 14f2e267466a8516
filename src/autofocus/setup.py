from glob import glob

from setuptools import find_packages, setup

package_name = 'autofocus'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + package_name + '/web', glob('web/*')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='autofocus maintainers',
    maintainer_email='maintainers@autofocus.dev',
    description='Autofocus nodes and their ROS-free core.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'camera = autofocus.nodes.camera_node:main',
            'lens_motor = autofocus.nodes.lens_motor_node:main',
            'lens_simulator = autofocus.nodes.lens_simulator_node:main',
            'sharpness = autofocus.nodes.sharpness_node:main',
            'pipeline_benchmark = autofocus.tools.pipeline_benchmark:main',
            'camera_sharpness = autofocus.nodes.composition:main',
            'focus_server = autofocus.nodes.focus_server_node:main',
            'focus_client = autofocus.tools.focus_client:main',
            'bringup = autofocus.tools.bringup:main',
            'focus_benchmark = autofocus.tools.benchmark:main',
            'recorder = autofocus.nodes.recorder_node:main',
            'player = autofocus.nodes.player_node:main',
            'bag_convert = autofocus.io.bags.convert:convert_main',
            'focus_analyze = autofocus.tools.analyze:main',
            'focus_fleet = autofocus.tools.fleet:main',
            'hardware_check = autofocus.tools.hardware_check:main',
            'web = autofocus.nodes.web_node:main',
            'continuous_focus = autofocus.nodes.continuous_focus_node:main',
            'continuous_benchmark = autofocus.tools.continuous_benchmark:main',
            'focus_positions = autofocus.nodes.focus_positions_node:main',
            'measure_study = autofocus.tools.measure_study:main',
        ],
    },
)
