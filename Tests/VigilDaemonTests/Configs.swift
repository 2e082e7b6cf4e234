/// Configuration texts the daemon tests share: the lvs01/lvs02 pair of etc/keepalived, with
/// knobs for what a test changes.
enum Configs {
    static func pair(priority: Int, vips: [String] = ["10.0.0.100/24"], extra: String = "", instanceExtra: String = "",
                     nopreempt: Bool = true, advert: Int = 1, script: Bool = false, vrid: Int = 77, name: String = "VI_1",
                     globals: String = "") -> String {
        """
        global_defs {
            router_id test
            enable_script_security
            script_user nobody
            \(globals)
        }
        \(script ? """
        vrrp_script chk {
            script "/etc/keepalived/check.sh"
            interval 1
            fall 2
            rise 2
            weight -10
        }
        """ : "")
        vrrp_instance \(name) {
            state BACKUP
            interface eth0
            virtual_router_id \(vrid)
            priority \(priority)
            \(nopreempt ? "nopreempt" : "")
            advert_int \(advert)
            authentication {
                auth_type PASS
                auth_pass 11111
            }
            virtual_ipaddress {
                \(vips.joined(separator: "\n        "))
            }
            \(script ? "track_script {\n        chk\n    }" : "")
            notify "/etc/keepalived/notify.sh"
            \(instanceExtra)
        }
        \(extra)
        """
    }

    /// The virtual server 10.0.0.100:80 (DR) with TCP_CHECKed real servers 10.0.1.N:80.
    static func virtualServer(realServers: [Int] = [1, 2], algorithm: String = "rr", options: String = "",
                              check: String = "connect_timeout 1\n            retry 0") -> String {
        """
        virtual_server 10.0.0.100 80 {
            delay_loop 2
            lb_algo \(algorithm)
            lb_kind DR
            protocol TCP
            \(options)
        \(realServers.map { """
            real_server 10.0.1.\($0) 80 {
                TCP_CHECK {
                    \(check)
                }
            }
        """ }.joined(separator: "\n"))
        }

        """
    }
}
